"""The Training panel's Study section: start (or continue) a study, follow its arms × folds (× repeats) status
matrix, cancel it, open its report.

Mixed into the module's widget class beside ``TrainingPanel`` (the widget provides ``ui``, ``logic`` and the
``_studyPollTimer`` QTimer). No ``qt`` import. The study runs as an ``improved-nnunet study run`` child process
(Slicer's main thread holds the GIL, so no study work runs in Slicer's process), or as a study job on the server
when "Run on" is server; the matrix is read from the study's files every ``STATUS_EVERY`` polls.
"""
from __future__ import annotations

from ImprovedNNUNetLib.panels.plumbing import _

STUDY_POLL_MS = 1000
STATUS_EVERY = 3  # polls between two readings of the status matrix (a few seconds)
ENDING_POLLS = 60  # polls the matrix is still read after the study's process ended, while a training ends


def _slicer():
    import slicer

    return slicer


class StudySection:
    _study = None  # the running StudyJob
    _studyPollTimer = None
    _studyTable = None  # the status matrix's table node
    _studyPolls = 0
    _studyEnding = 0

    def connectStudySection(self):
        self._studyPollTimer.connect("timeout()", self.onStudyPollTimer)
        self.ui.studyRunButton.connect("clicked(bool)", self.onStudyRun)
        self.ui.studyReportButton.connect("clicked(bool)", self.onStudyReport)
        self._updateStudyGUI()

    def cleanupStudySection(self):
        """The module is being removed: a study on this computer stops (its trainings write their checkpoints;
        running it again continues it); one on the server goes on."""
        if self._studyPollTimer is not None:
            self._studyPollTimer.stop()
        if self._study is not None and self._study.running and self._study.server is None:
            self._study.process.cancel()

    def _studyRunning(self):
        return self._study is not None and self._study.running

    def _updateStudyGUI(self):
        running = self._studyRunning()
        self.ui.studyRunButton.text = _("Cancel study") if running else _("Run study")
        self.ui.studyReportButton.enabled = self._study is not None and self._study.report is not None

    def onStudyRun(self):
        if self._studyRunning():
            self._study.cancel()
            self._log(_("Cancelling the study (each training stops with a checkpoint)..."))
            return

        def start():
            request = self.logic.studyRequestFromParameters(self._parameterNode)
            if self._onServer():
                return self.logic.startStudy(request, server=self._server())
            from ImprovedNNUNetLib.core.dependencies import require

            require()  # torch and nnU-Net, which the trainings need, before anything starts
            return self.logic.startStudy(request)

        job = self._guarded(start, _("The study could not start."))
        if job is None:
            return
        self._study, self._studyPolls, self._studyEnding = job, 0, 0
        where = _("on the server (job {job})").format(job=job.job_id) if job.server is not None else \
            _("on this computer ({executor})").format(executor=job.request.executor)
        self._log(_("Study {name} of {dataset} started {where}").format(name=job.request.study_name,
                                                                         dataset=job.request.dataset, where=where))
        self._studyPollTimer.start(STUDY_POLL_MS)
        self._updateStudyGUI()

    def onStudyPollTimer(self):
        job = self._study
        if job is None:
            return
        lines = self._guarded(job.poll, _("Following the study failed."), waitCursor=False)
        for line in lines or []:
            self._log(line)
        self._studyPolls += 1
        if self._studyPolls % STATUS_EVERY == 1 or not job.running:  # on the server: asked of it
            self._showStudyStatus()
        if job.running and lines is not None:
            return
        if self._trainingsStillEnding():
            return  # a cancelled training writes its checkpoint after the study's own process has ended
        self._studyPollTimer.stop()
        if job.succeeded:
            self._log(_("Study {name} finished; Open report shows it").format(name=job.request.study_name)
                      if job.report else _("Study {name} ended").format(name=job.request.study_name))
        elif lines is not None:
            self._log(_("Study {name} stopped; Run study continues it").format(name=job.request.study_name))
        self._updateStudyGUI()

    def _trainingsStillEnding(self):
        """After the study's process ended: whether its matrix still shows a running training (for at most
        ``ENDING_POLLS`` more polls)."""
        if self._study.server is None and self._studyTable is not None and self._studyEnding < ENDING_POLLS:
            self._studyEnding += 1
            table = self._studyTable
            return any(table.GetCellText(row, column).startswith("running")
                       for row in range(table.GetNumberOfRows()) for column in range(1, table.GetNumberOfColumns()))
        return False

    def _showStudyStatus(self):
        job = self._study
        if self._studyTable is None or _slicer().mrmlScene.GetNodeByID(self._studyTable.GetID()) is None:
            self._studyTable = _slicer().mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "study status")
        if self.logic.showStudyStatus(job.request, self._studyTable, job):
            self.ui.studyStatusTableView.setMRMLTableNode(self._studyTable)

    def onStudyReport(self):
        if self._study is None or self._study.report is None:
            return
        import webbrowser

        webbrowser.open(self._study.report.resolve().as_uri())  # the system's browser, as a link in Slicer opens
