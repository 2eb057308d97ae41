"""The world model and its controller: V, the ConvVAE (vae); M, the MDN-RNN (mdrnn); C, the linear
controller (controller); loading and checking a run's weights (weights); and the training loop V and M
share (training). Nothing here knows of MPI or of stages.
"""
