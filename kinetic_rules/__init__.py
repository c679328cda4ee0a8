"""kinetic-rules: strategies as YAML rules, compiled into vectorized predicates."""

__version__ = "0.1.0"
