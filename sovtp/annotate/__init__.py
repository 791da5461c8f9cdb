"""Faces, bodies, action units and cues from sampled frames (MediaPipe Tasks)."""
