"""An in-memory implementation of the example BookstoreService (protos/bookstore/v1).

The generated package is passed in (`make_service(gen.bookstore.v1)`), so the same code serves
whatever output root the demo or a test generated into.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import betterproto
from grpclib import GRPCError
from grpclib.const import Status


def make_service(pb: ModuleType) -> Any:
    """A `BookstoreServiceBase` subclass instance holding a small seeded catalogue."""
    empty = pb.betterproto_lib_google_protobuf.Empty

    class Bookstore(pb.BookstoreServiceBase):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.shelves: dict[str, Any] = {}
            self.books: dict[str, Any] = {}
            self.events: asyncio.Queue[Any] = asyncio.Queue()
            self._seed()

        def _seed(self) -> None:
            now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
            self.shelves["shelves/fiction"] = pb.Shelf(
                name="shelves/fiction",
                display_name="Fiction",
                theme=pb.Genre.FICTION,
                create_time=now,
            )
            self.books["shelves/fiction/books/dune"] = pb.Book(
                name="shelves/fiction/books/dune",
                title="Dune",
                authors=["authors/herbert"],
                genres=[pb.Genre.SCIENCE_FICTION],
                isbn_13="9780441013593",
                copies_sold=20_000_000,
                publish_time=now,
                labels={"lang": "en"},
                chapter_titles={1: "Book One"},
            )

        async def list_shelves(self, request: Any) -> Any:
            return pb.ListShelvesResponse(shelves=list(self.shelves.values()))

        async def create_shelf(self, request: Any) -> Any:
            name = f"shelves/{request.shelf_id or len(self.shelves)}"
            if name in self.shelves:
                raise GRPCError(Status.ALREADY_EXISTS, f"{name} already exists")
            request.shelf.name = name
            self.shelves[name] = request.shelf
            return request.shelf

        async def get_shelf(self, request: Any) -> Any:
            return self._shelf(f"shelves/{request.shelf}")

        async def check_shelf_exists(self, request: Any) -> Any:
            self._shelf(request.name)
            return empty()

        async def update_shelf(self, request: Any) -> Any:
            self._shelf(request.shelf.name)
            self.shelves[request.shelf.name] = request.shelf
            await self.events.put(
                pb.ShelfEvent(shelf=request.shelf.name, shelf_updated=request.shelf)
            )
            return request.shelf

        async def delete_shelf(self, request: Any) -> Any:
            self.shelves.pop(self._shelf(f"shelves/{request.shelf}").name)
            return empty()

        async def watch_shelf(self, request: Any) -> AsyncIterator[Any]:
            self._shelf(request.name)
            for book in self._books_of(request.name)[: request.max_events or None]:
                yield pb.ShelfEvent(shelf=request.name, book_added=book)

        async def list_books(self, request: Any) -> Any:
            books = self._books_of(self._shelf(request.parent).name)
            if request.genres:
                books = [b for b in books if set(b.genres) & set(request.genres)]
            return pb.ListBooksResponse(books=books)

        async def create_book(self, request: Any) -> Any:
            self._shelf(request.parent)
            request.book.name = f"{request.parent}/books/{request.book_id or len(self.books)}"
            self.books[request.book.name] = request.book
            return request.book

        async def get_book(self, request: Any) -> Any:
            return self._book(request.name)

        async def update_book(self, request: Any) -> Any:
            book = self._book(request.book.name)
            for path in request.update_mask.paths if request.update_mask else []:
                try:
                    _copy_path(request.book, book, path)
                except AttributeError:
                    why = f"update_mask: {path!r} is not a field path of bookstore.v1.Book"
                    raise GRPCError(Status.INVALID_ARGUMENT, why) from None
            # Through the wire form: a oneof member _copy_path unset (None) is then no member.
            self.books[book.name] = book = pb.Book().parse(bytes(book))
            return book

        async def delete_book(self, request: Any) -> Any:
            self.books.pop(self._book(request.name).name)
            return empty()

        async def checkout_book(self, request: Any) -> Any:
            book = self._book(request.name)
            _, borrower = betterproto.which_one_of(request, "borrower")
            if not borrower:
                why = "a borrower is required: member_id or library_card"
                raise GRPCError(Status.INVALID_ARGUMENT, why)
            return pb.Loan(name=f"{book.name}/loans/1", book=book.name, borrower=borrower)

        async def get_book_file(self, request: Any) -> Any:
            return pb.BookFile(
                name=request.name, content_type="text/plain", content=b"chapter 1", size_bytes=9
            )

        async def get_chapter(self, request: Any) -> Any:
            book = self._book(request.book)
            if request.chapter_number not in book.chapter_titles:
                raise GRPCError(
                    Status.NOT_FOUND, f"{book.name} has no chapter {request.chapter_number}"
                )
            return pb.Chapter(
                book=book.name,
                number=request.chapter_number,
                title=book.chapter_titles[request.chapter_number],
            )

        async def get_author(self, request: Any) -> Any:
            if request.name != "authors/herbert":
                raise GRPCError(Status.NOT_FOUND, f"{request.name} not found")
            return pb.GetAuthorResponse(
                author=pb.Author(name=request.name, display_name="Frank Herbert")
            )

        async def list_genres(self, request: Any) -> Any:
            genres = sorted({g for b in self.books.values() for g in b.genres})
            return pb.ListGenresResponse(genres=genres, total_books=len(self.books))

        async def import_books(self, requests: AsyncIterator[Any]) -> Any:
            names = []
            async for book in requests:
                self.books[book.name] = book
                names.append(book.name)
            return pb.ImportBooksResponse(imported_count=len(names), book_names=names)

        async def get_store_stats(self, request: Any) -> Any:
            return pb.StoreStats(total_books=len(self.books))

        def _shelf(self, name: str) -> Any:
            if name not in self.shelves:
                raise GRPCError(Status.NOT_FOUND, f"{name} not found")
            return self.shelves[name]

        def _book(self, name: str) -> Any:
            if name not in self.books:
                raise GRPCError(Status.NOT_FOUND, f"{name} not found")
            return self.books[name]

        def _books_of(self, shelf: str) -> list[Any]:
            return [b for n, b in sorted(self.books.items()) if n.startswith(shelf + "/books/")]

    return Bookstore()


def _copy_path(source: Any, target: Any, path: str) -> None:
    """Copy the field a FieldMask path names (`title`, `price.units`) from source to target."""
    name, _, rest = path.partition(".")
    if not rest:
        value = _member(source, name)
        if value is not None or _member(target, name) is not None:  # else unset in both
            setattr(target, name, value)
        return
    child = getattr(source, name)
    group = target._betterproto.oneof_group_by_field.get(name)
    if group and betterproto.which_one_of(target, group)[0] != name:
        setattr(target, name, type(child)())  # an unset oneof member: start from an empty one
    _copy_path(child, getattr(target, name), rest)


def _member(message: Any, name: str) -> Any:
    """A field's value; None for a oneof member that is not the one set (betterproto raises
    AttributeError on reading it): a mask naming it unsets it, as FieldMask's update rules say
    of a field the request leaves unset."""
    group = message._betterproto.oneof_group_by_field.get(name)
    if group and betterproto.which_one_of(message, group)[0] != name:
        return None
    return getattr(message, name)
