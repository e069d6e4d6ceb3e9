from dnnbench.models.mlp import MLP, build_model, init_variables

__all__ = ["MLP", "build_model", "init_variables"]
