"""`improved-nnunet serve`: the GPU server (FastAPI + uvicorn) that the panels and scripts use remotely, and
`improved-nnunet serve keys add|revoke|list`: its API keys."""
from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from ImprovedNNUNetLib.core.errors import UserError

DEFAULT_FOLDER = Path.home() / ".improved-nnunet" / "server"
FOLDER_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def add_parser(sub):
    parser = sub.add_parser(
        "serve", help="run the server that panels and scripts on other computers use (API keys, job queue)",
        description="Serve this computer's GPUs (or CPU) to Slicer panels and scripts elsewhere: segmentation and "
                    "training jobs, one per GPU, the rest queued; job records survive restarts. Every request needs "
                    "an API key: create one with 'improved-nnunet serve keys add NAME'.")
    parser.add_argument("--folder", type=Path, default=None,
                        help=f"the server's folder: keys, jobs, uploads (default {DEFAULT_FOLDER}); nnU-Net's "
                             "folders come from nnUNet_raw/_preprocessed/_results, else FOLDER/nnUNet_*")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; reach it through an SSH "
                             "tunnel, or give another address together with TLS)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--gpus", default=None, metavar="0,1",
                        help="GPUs to run jobs on, one job each (default: the CPU, one job at a time)")
    parser.add_argument("--ssl-keyfile", type=Path, default=None, help="TLS private key (with --ssl-certfile)")
    parser.add_argument("--ssl-certfile", type=Path, default=None, help="TLS certificate")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback address without TLS (keys and images then cross the network "
                             "readable: only on a network you trust)")
    parser.add_argument("--max-upload-mb", type=float, default=4096.0, help="largest upload accepted (default 4096)")
    parser.add_argument("--max-jobs", type=int, default=20, help="jobs one key may have queued or running (default 20)")
    parser.add_argument("--keep-days", type=float, default=None, metavar="DAYS",
                        help="remove uploads and the files of ended jobs older than DAYS (checked at start and every "
                             "hour; job records, resumable trainings, datasets and models stay); default: keep all")
    keys = parser.add_subparsers(dest="serve_action", metavar="keys|purge")
    key_parser = keys.add_parser("keys", help="create, revoke and list API keys")
    key_actions = key_parser.add_subparsers(dest="key_action", metavar="add|revoke|list", required=True)
    add = key_actions.add_parser("add", help="create a key; it is printed once, as the last line")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="this key sees every user's jobs")
    revoke = key_actions.add_parser("revoke", help="revoke a key (its requests are refused from now on)")
    revoke.add_argument("name")
    listing = key_actions.add_parser("list", help="the keys' names and roles (never the keys)")
    purge = keys.add_parser("purge", help="remove uploads and ended jobs' files older than some days, once")
    purge.add_argument("--older-than-days", type=float, required=True, metavar="DAYS")
    purge.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    purge.add_argument("--folder", type=Path, default=argparse.SUPPRESS, help="the server's folder")
    for action in (add, revoke, listing):  # --folder also after the action, where it is natural to type it
        action.add_argument("--folder", type=Path, default=argparse.SUPPRESS, help="the server's folder")


def server_folder(args) -> Path:
    return (args.folder or Path(os.environ.get("IMPROVED_NNUNET_SERVER", DEFAULT_FOLDER))).expanduser().resolve()


def nnunet_folders(folder: Path) -> dict[str, str]:
    """nnU-Net's folders (the environment's, else under the server folder) and the models folder."""
    from ImprovedNNUNetLib.inference.models.store import ENV_VAR

    found = {name: os.environ.get(name) or str(folder / name) for name in FOLDER_VARIABLES}
    found[ENV_VAR] = os.environ.get(ENV_VAR) or str(folder / "models")
    for path in found.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    return found


def check_address(host: str, tls: bool, insecure: bool) -> None:
    """Loopback by default; another address needs TLS or an explicit --insecure."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not tls and not insecure:
        raise UserError(f"--host {host} would send keys and images over the network unencrypted; give "
                        "--ssl-keyfile and --ssl-certfile, or reach a 127.0.0.1 server through an SSH tunnel "
                        "(docs: Working with a GPU server), or pass --insecure on a network you trust")


def run_keys(args, folder: Path) -> int:
    from ImprovedNNUNetLib.server.store import Store

    store = Store(folder)
    if args.key_action == "add":
        key = store.add_key(args.name, admin=args.admin)
        print(f"key {args.name!r} created{' (admin)' if args.admin else ''}; it is shown only now, keep it safe:")
        print(key)
    elif args.key_action == "revoke":
        store.revoke_key(args.name)
        print(f"key {args.name!r} revoked")
    else:
        for key in store.keys():
            state = "revoked" if key["revoked"] else "active"
            print(f"{key['name']}\t{'admin' if key['admin'] else 'user'}\t{state}")
    return 0


def run_purge(args, folder: Path) -> int:
    """``serve purge``: the retention applied once (a running server's own ``--keep-days`` does it hourly)."""
    from ImprovedNNUNetLib.server.files import ServerFolder
    from ImprovedNNUNetLib.server.retention import purge
    from ImprovedNNUNetLib.server.store import DATABASE, Store

    if not (folder / DATABASE).is_file():
        raise UserError(f"{folder} is not a server folder (no {DATABASE}); give the server's --folder")
    purged = purge(Store(folder), ServerFolder(folder), args.older_than_days, dry_run=args.dry_run)
    print(f"{folder}: {purged.text(args.dry_run)} older than {args.older_than_days:g} days")
    return 0


def run(args) -> int:
    folder = server_folder(args)
    if args.serve_action == "keys":
        return run_keys(args, folder)
    if args.serve_action == "purge":
        return run_purge(args, folder)
    from ImprovedNNUNetLib.core.dependencies import require_command_line_package

    for package in ("fastapi", "uvicorn"):
        require_command_line_package(package, "the server")
    tls = args.ssl_keyfile is not None or args.ssl_certfile is not None
    if tls and (args.ssl_keyfile is None or args.ssl_certfile is None):
        raise UserError("TLS needs both --ssl-keyfile and --ssl-certfile")
    check_address(args.host, tls, args.insecure)
    if args.max_jobs < 1 or args.max_upload_mb <= 0:
        raise UserError("--max-jobs and --max-upload-mb must be positive")
    if args.keep_days is not None:
        from ImprovedNNUNetLib.server.retention import checked_days

        checked_days(args.keep_days)
    import uvicorn

    from ImprovedNNUNetLib.server.app import create_app
    from ImprovedNNUNetLib.server.scheduler import slots_for

    folders = nnunet_folders(folder)
    os.environ.update(folders)  # this process lists the models and reads the datasets of these folders
    app = create_app(folder, slots_for(args.gpus), folders, max_upload_bytes=int(args.max_upload_mb * 2**20),
                     max_jobs=args.max_jobs, keep_days=args.keep_days)
    print(f"improved-nnunet serve: folder {folder}; jobs on {', '.join(app.state.server.scheduler.slots)}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, ssl_keyfile=str(args.ssl_keyfile) if tls else None,
                ssl_certfile=str(args.ssl_certfile) if tls else None, log_level="info", timeout_graceful_shutdown=30,
                timeout_keep_alive=75)  # longer than any client's poll interval: a polled connection stays open
    return 0
