"""The webhook pool: signed deliveries over HTTP. Imports neither torch nor the pipelines."""
