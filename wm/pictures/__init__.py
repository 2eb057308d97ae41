"""What a run shows: loss and training curves (plots), frames with captions and action bars (panels,
images), GIF/MP4 writing (video), the dream beside the game (dream_video), V's reconstructions and
traversal (vae_pictures), an agent's episode (render), results.md (results) and the report page (report).
"""
