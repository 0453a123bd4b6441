"""Experiments: runs of the pipeline with changed params, recorded as commits under `refs/exps/`."""
