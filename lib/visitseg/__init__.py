"""visitseg: behavioural segments of e-commerce visits, computed with PySpark and written as Delta tables."""

__version__ = "0.1.0"
