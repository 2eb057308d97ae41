"""``python -m wm`` lists the commands."""

COMMANDS = {
    "pipeline": "the whole experiment, every stage not yet complete (Doom or CarRacing)",
    "extract": "random-policy episodes from the real game, over MPI ranks",
    "vae_train": "train V, the ConvVAE, on the episodes' frames",
    "series": "encode every episode with V: the latent series M learns from",
    "rnn_train": "train M, the MDN-RNN, on the series",
    "train": "train C with an evolution strategy over MPI, in the real game or in M's dream",
    "evaluate": "score a controller (or the random policy) over fresh episodes",
    "play": "iterative training: real episodes of a controller into the next round of data",
    "export": "pack a trained agent into a small run directory",
    "render": "draw one episode of the agent as a GIF or MP4",
    "report": "report.md: the run's pictures, curves and videos",
    "results": "results.md: the run's scores, timings and settings",
    "submit": "every stage as Slurm batch jobs chained by dependencies",
    "sweep": "the paper's temperature table: train and score at several temperatures",
}

print("World Models commands: python -m wm.<command> --help (or ./wm.sh <command> --help)")
for name, what in COMMANDS.items():
    print(f"  {name:10s} {what}")
