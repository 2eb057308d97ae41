"""World Models (Ha & Schmidhuber 2018) with the controller trained by an MPI evolution strategy.

The parts, one subpackage each (each ``__init__`` says what its modules do):
  wm.models         V (ConvVAE), M (MDN-RNN), C (linear controller), their weights and training loop
  wm.envs           the games (Doom TakeCover, CarRacing), random policies, the agent stepping an env,
                    M's dream as an env, M's foresight of real deaths
  wm.data           a run's files: episodes, the data set, safe writes, the run directory
  wm.stages         the pipeline's stages: extract, vae_train, series, rnn_train, train, evaluate, play,
                    export
  wm.pictures       curves, frames, videos, results.md and the report
  wm.orchestration  the whole experiment: pipeline, iterative training's rounds, Slurm (submit), sweep
  wm.core           command lines, settings and presets, errors, progress lines
The evolution strategies live in the separate package ``es`` (which knows nothing of world models).
Every command is ``python -m wm.<command>`` (the small modules at this level); ``python -m wm`` lists them.
"""
