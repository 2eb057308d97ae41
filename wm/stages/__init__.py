"""The pipeline's stages, each a command (`python -m wm.<stage>`): random-policy episodes (extract), V's
training (vae_train), the latent series (series), M's training (rnn_train), C's evolution strategy over
MPI (train, with signal_check: did the ES get a signal), the real-game or dream score (evaluate),
iterative training's episodes (play) and a compact agent (export).
"""
