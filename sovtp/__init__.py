"""sovtp: zero-shot emotion recognition and reasoning with vision LLMs (Set-of-Vision-Text prompts).

Importing the package is cheap and side-effect free; heavy dependencies (mediapipe, torch,
transformers, vllm) are imported by the functions that need them.
"""

__version__ = "0.1.0"
