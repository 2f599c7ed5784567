"""Print the package's dependencies pinned at their floors (`name>=X` -> `name==X`), markers
kept: the constraints of CI's lowest-versions step (.ci/run)."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
for dep in project["project"]["dependencies"]:
    requirement, _, marker = dep.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([^,\s]+)\s*", requirement)
    if match is None:
        sys.exit(f"{dep!r}: every dependency needs a floor (name>=X) and nothing else")
    pin = f"{match[1]}=={match[2]}"
    print(f"{pin}; {marker.strip()}" if marker else pin)
