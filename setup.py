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
        # delta-spark 4.4 declares pyspark>=4.0.1,<=4.2.0; stay inside that range.
        "pyspark>=4.0.1,<=4.2.0",
        "delta-spark>=4.0,<5",
        "deltalake>=1.1,<2",
        "pyarrow>=15",
        "pandas>=2.0,<3",
        "numpy>=1.26",
        "tomli>=2.0; python_version<'3.11'",
    ],
    extras_require={
        "dev": ["pytest>=8", "chispa>=0.10", "scikit-learn>=1.4"],
    },
    entry_points={"console_scripts": ["visitseg=visitseg.cli:main"]},
)
