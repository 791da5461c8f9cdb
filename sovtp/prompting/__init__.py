"""PromptSpecs, sandboxed jinja2 templates, and ClipAnnotation → Query."""
