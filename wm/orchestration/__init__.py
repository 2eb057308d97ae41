"""Running the stages together: the whole experiment on one machine (pipeline), iterative training's
rounds (rounds), Slurm batch jobs chained by dependencies (submit), and the paper's temperature table
(sweep).
"""
