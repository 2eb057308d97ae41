"""The files of a run: episode files (record), the data set of a run with its rounds (recordset), safe
writes and reads (files), and the run directory itself: its config.json, locks, status and which
controller is the run's (rundir).
"""
