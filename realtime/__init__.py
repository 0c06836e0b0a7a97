"""Real-time capture, playback and separation loop (camera, microphone, speaker)."""
