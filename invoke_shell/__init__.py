"""invoke-shell: the invoke> command line for Stable Diffusion, on diffusers."""

__version__ = "0.1.0"
