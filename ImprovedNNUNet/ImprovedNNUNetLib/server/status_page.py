"""The server's status page (``GET /``): the jobs a key may see, their state and the training curves.

One static page, no template engine: the key is typed into the page, or given once in the address's fragment
(``http://host:port/#key=KEY``: a fragment never reaches the server or its logs, and the page removes it from
the address at once); it is kept in the tab's ``sessionStorage`` only (no cookie), and the page calls the same
authenticated API as every client.
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Improved nnU-Net server</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222} table{border-collapse:collapse} td,th{padding:.3em .8em;
border-bottom:1px solid #ddd;text-align:left} .failed{color:#b00} .done{color:#070} .running{color:#05a}
#curve{border:1px solid #ccc}
</style></head>
<body><h1>Improved nnU-Net server</h1>
<form id="login"><label>API key <input id="key" type="password" autocomplete="off"></label>
<button>Show jobs</button></form>
<p id="message"></p>
<table id="jobs"><thead><tr><th>job</th><th>owner</th><th>kind</th><th>state</th><th>slot</th><th>message</th>
</tr></thead><tbody></tbody></table>
<h2 id="curveTitle"></h2><canvas id="curve" width="640" height="240" hidden></canvas>
<script>
const api = (path) => fetch(path, {headers: {Authorization: "Bearer " + sessionStorage.getItem("key"),
                                             "X-Improved-NNUNet-API": "1"}});
function text(value) { return value === null || value === undefined ? "" : String(value); }
async function curve(job) {
  const response = await api(`/api/jobs/${job.id}/events`);
  if (!response.ok) return;
  const epochs = (await response.json()).events.filter(e => e.stage === "training" && e.train_loss !== undefined
                                                         && e.train_loss !== null);
  if (!epochs.length) return;
  const canvas = document.getElementById("curve"), g = canvas.getContext("2d");
  canvas.hidden = false;
  document.getElementById("curveTitle").textContent = `Job ${job.id}: loss per epoch`;
  g.clearRect(0, 0, canvas.width, canvas.height);
  const values = epochs.flatMap(e => [e.train_loss, e.val_loss]).filter(v => v !== null && v !== undefined);
  const low = Math.min(...values), high = Math.max(...values) || 1, span = (high - low) || 1;
  for (const [key, colour] of [["train_loss", "#05a"], ["val_loss", "#c60"]]) {
    g.strokeStyle = colour; g.beginPath();
    epochs.forEach((e, i) => {
      const x = 20 + i * (canvas.width - 40) / Math.max(1, epochs.length - 1);
      const y = canvas.height - 20 - (e[key] - low) / span * (canvas.height - 40);
      i ? g.lineTo(x, y) : g.moveTo(x, y);
    });
    g.stroke();
  }
}
async function show() {
  const response = await api("/api/jobs"), message = document.getElementById("message");
  if (!response.ok) { message.textContent = (await response.json()).detail; return; }
  const jobs = await response.json(), body = document.querySelector("#jobs tbody");
  message.textContent = `${jobs.length} job(s)`;
  body.replaceChildren(...jobs.map(job => {
    const row = document.createElement("tr");
    for (const value of [job.id, job.owner, job.kind, job.state, job.slot, job.message]) {
      const cell = document.createElement("td"); cell.textContent = text(value); row.appendChild(cell);
    }
    row.className = job.state; row.onclick = () => curve(job);
    return row;
  }));
  const training = jobs.find(job => job.kind === "train");
  if (training) await curve(training);
}
document.getElementById("login").onsubmit = (event) => {
  event.preventDefault(); sessionStorage.setItem("key", document.getElementById("key").value); show();
};
const given = new URLSearchParams(location.hash.slice(1)).get("key");
if (given) { sessionStorage.setItem("key", given); history.replaceState(null, "", location.pathname); }
if (sessionStorage.getItem("key")) show();
setInterval(() => { const given = new URLSearchParams(location.hash.slice(1)).get("key");
if (given) { sessionStorage.setItem("key", given); history.replaceState(null, "", location.pathname); }
if (sessionStorage.getItem("key")) show(); }, 5000);
</script></body></html>
"""
