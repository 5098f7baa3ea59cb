from pathlib import Path

from setuptools import find_packages, setup

about: dict = {}
exec(Path("lib/visitseg/__init__.py").read_text(), about)

setup(
    name="visitseg",
    version=about["__version__"],
    description="Behavioural segmentation of e-commerce visits with PySpark, written as Delta tables",
    long_description=Path("README.md").read_text(),
    long_description_content_type="text/markdown",
    package_dir={"": "lib"},
    packages=find_packages("lib"),
    python_requires=">=3.10",
    install_requires=[
        # Spark 3.5 (Dataproc 2.2/2.3, EMR 7) and 4.0-4.3 (4.3 without Delta's Spark source: no Delta
        # release supports it yet). On a cluster, pip sees the cluster's pyspark and keeps it.
        "pyspark>=3.5.0,<4.4",
        "deltalake>=1.1,<2",  # the jar-free Delta writer (driver only)
        "pyarrow>=15",
        "pandas>=2.0,<3",
        "numpy>=1.26",
        "matplotlib>=3.8",  # the report page's charts, as inline SVG (README: "The run report")
        "scipy>=1.11",  # linear_sum_assignment: the optimal matching of segment ids across retrains (lineage.py)
        "tomli>=2.0; python_version<'3.11'",
    ],
    extras_require={
        # The Python side of Spark's Delta source (`configure_spark_with_delta_pip`). Clusters ship Delta
        # themselves, and each Spark line needs its own Delta line (3.3.x for 3.5, 4.x for 4.x): the
        # constraints file of the line pins it.
        "delta": ["delta-spark>=3.2,<5"],
        # selenium drives the system's headless Chromium for the report page's browser test and screenshots;
        # pytest-xdist runs the suite's files on two workers (`make test`), overlapping their JVM starts and waits.
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "chispa>=0.10", "scikit-learn>=1.4", "selenium>=4.20"],
    },
    entry_points={"console_scripts": ["visitseg=visitseg.cli:main"]},
)
