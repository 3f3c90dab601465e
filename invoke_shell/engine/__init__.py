"""Image generation on diffusers pipelines. Nothing here knows about the terminal."""
