"""The built-in demonstration model: procedural data, tokenizer, trainer, scorer and evaluation.

`python -m invoke_shell.toymodel.train --out DIR` trains it from scratch on a CPU;
`python -m invoke_shell.toymodel.evaluate` scores the shipped folder (invoke_shell/data/builtin).
"""
