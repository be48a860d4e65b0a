"""The one error type that leaves the plugin: what is wrong, and where in which .proto file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Where:
    """A place in the input: a file (a .proto or the http_config YAML), a line, an element."""

    file: str
    line: int | None = None  # 1-based
    element: str = ""  # "bookstore.v1.Bookstore.GetBook" or "" for the file itself

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{place}: {self.element}" if self.element else place


class GenerationError(Exception):
    """One or more problems found in the input; nothing is written when this is raised.

    The message lists every problem, one per line, each starting with where it is:
    `bookstore/v1/bookstore.proto:42: bookstore.v1.Bookstore.GetBook: template "/v1/{id": …`
    """

    def __init__(self, problems: list[tuple[Where, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{where}: {why}" for where, why in problems))

    @classmethod
    def one(cls, where: Where, why: str) -> GenerationError:
        return cls([(where, why)])
