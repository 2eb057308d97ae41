"""Shared plumbing every part uses: command lines built from one dataclass of arguments (cli), the
stages' settings and presets (config), the project's one-line errors (errors) and progress lines
(progress).
"""
