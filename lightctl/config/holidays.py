"""``schedule.holiday_files``: next years' official holidays, read at load time.

The files (paths relative to the config file) are read into ``schedule.official_years``, so that
building the schedule later does no I/O.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from lightctl.config.problems import Locator, Path_, Problem, problem_at, pydantic_problems
from lightctl.model.config import Config
from lightctl.model.schedule import OfficialYear


def load_holiday_files(config: Config, file: str, locate: Locator, problems: list[Problem]) -> Config:
    section = config.schedule
    if not section.holiday_files:
        return config
    base = Path(file).parent if not file.startswith("<") else Path.cwd()
    years = list(section.official_years)
    for i, name in enumerate(section.holiday_files):
        path = base / name
        where: Path_ = ("schedule", "holiday_files", i)
        try:
            data = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            problems.append(
                problem_at(
                    file, locate, where, f"cannot read holiday file {str(path)!r}: {exc.strerror or exc}"
                )
            )
            continue
        except MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else None
            problems.append(Problem(str(path), line, "", f"not valid YAML: {exc.problem}"))
            continue
        try:
            years.append(OfficialYear.model_validate(data))
        except ValidationError as exc:
            problems.extend(pydantic_problems(exc, str(path), Locator(data)))
    seen: dict[int, int] = {}
    for official in years:
        if official.year in seen:
            problems.append(
                problem_at(
                    file, locate, ("schedule", "holiday_files"), f"the year {official.year} is given twice"
                )
            )
        seen[official.year] = 1
    schedule = section.model_copy(update={"official_years": years})
    return config.model_copy(update={"schedule": schedule})
