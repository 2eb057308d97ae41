"""``python -m wm`` lists the stages."""

print("World Models stages: python -m wm.<stage> --help\n  extract   collect random-policy episodes")
