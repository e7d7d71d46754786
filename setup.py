"""Package discovery, the one part of the build pyproject.toml cannot say: the web UI's folders.

templates/ and static/ stay where they are in the repository, beside app/, and ship inside the package as
app/templates and app/static (app/assets.py finds them in either place). Their sub-folders are listed as
packages too, as setuptools wants for any directory that ends up importable; pyproject.toml's package-data
takes every file in them.
"""

from setuptools import find_namespace_packages, find_packages, setup

UI = {"app.templates": "templates", "app.static": "static"}
ui_packages = [f"{pkg}.{sub}" for pkg, folder in UI.items() for sub in find_namespace_packages(where=folder)]

setup(
    packages=find_packages(include=["app", "app.*"]) + list(UI) + ui_packages,
    package_dir=UI,
)
