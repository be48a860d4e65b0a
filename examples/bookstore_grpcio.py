"""The example BookstoreService of examples/bookstore.py on grpcio: a `grpc.aio` servicer over the
classes `protoc --python_out --grpc_python_out` generates (upb messages, not betterproto).

Same catalogue, same answers and the same status codes and messages as the betterproto one, so a
gateway in front of either must answer alike. The generated modules import each other by their
proto paths (`from bookstore.v1 import messages_pb2`): the directory protoc wrote to must be on
`sys.path`; `make_servicer("bookstore.v1")` then imports them.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.protobuf import empty_pb2, timestamp_pb2
from google.protobuf.message import Message

SEEDED = timestamp_pb2.Timestamp(seconds=1767225600)  # 2026-01-01T00:00:00Z


def make_servicer(package: str = "bookstore.v1") -> Any:
    """A `BookstoreServiceServicer` subclass instance holding the small seeded catalogue."""
    grpc_module = importlib.import_module(f"{package}.bookstore_pb2_grpc")
    m = importlib.import_module(f"{package}.messages_pb2")
    r = importlib.import_module(f"{package}.resources_pb2")

    class Bookstore(grpc_module.BookstoreServiceServicer):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.shelves: dict[str, Any] = {}
            self.books: dict[str, Any] = {}
            self._seed()

        def _seed(self) -> None:
            self.shelves["shelves/fiction"] = r.Shelf(
                name="shelves/fiction",
                display_name="Fiction",
                theme=r.Genre.GENRE_FICTION,
                create_time=SEEDED,
            )
            self.books["shelves/fiction/books/dune"] = r.Book(
                name="shelves/fiction/books/dune",
                title="Dune",
                authors=["authors/herbert"],
                genres=[r.Genre.GENRE_SCIENCE_FICTION],
                isbn_13="9780441013593",
                copies_sold=20_000_000,
                publish_time=SEEDED,
                labels={"lang": "en"},
                chapter_titles={1: "Book One"},
            )

        async def ListShelves(self, request: Any, context: Any) -> Any:
            return m.ListShelvesResponse(shelves=list(self.shelves.values()))

        async def CreateShelf(self, request: Any, context: Any) -> Any:
            name = f"shelves/{request.shelf_id or len(self.shelves)}"
            if name in self.shelves:
                await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"{name} already exists")
            request.shelf.name = name
            self.shelves[name] = request.shelf
            return request.shelf

        async def GetShelf(self, request: Any, context: Any) -> Any:
            return await self._shelf(f"shelves/{request.shelf}", context)

        async def CheckShelfExists(self, request: Any, context: Any) -> Any:
            await self._shelf(request.name, context)
            return empty_pb2.Empty()

        async def UpdateShelf(self, request: Any, context: Any) -> Any:
            await self._shelf(request.shelf.name, context)
            self.shelves[request.shelf.name] = request.shelf
            return request.shelf

        async def DeleteShelf(self, request: Any, context: Any) -> Any:
            self.shelves.pop((await self._shelf(f"shelves/{request.shelf}", context)).name)
            return empty_pb2.Empty()

        async def WatchShelf(self, request: Any, context: Any) -> AsyncIterator[Any]:
            await self._shelf(request.name, context)
            for book in self._books_of(request.name)[: request.max_events or None]:
                yield m.ShelfEvent(shelf=request.name, book_added=book)

        async def ListBooks(self, request: Any, context: Any) -> Any:
            books = self._books_of((await self._shelf(request.parent, context)).name)
            if request.genres:
                books = [b for b in books if set(b.genres) & set(request.genres)]
            return m.ListBooksResponse(books=books)

        async def CreateBook(self, request: Any, context: Any) -> Any:
            await self._shelf(request.parent, context)
            request.book.name = f"{request.parent}/books/{request.book_id or len(self.books)}"
            self.books[request.book.name] = request.book
            return request.book

        async def GetBook(self, request: Any, context: Any) -> Any:
            return await self._book(request.name, context)

        async def UpdateBook(self, request: Any, context: Any) -> Any:
            book = await self._book(request.book.name, context)
            for path in request.update_mask.paths:
                try:
                    _copy_path(request.book, book, path)
                except (AttributeError, KeyError):
                    why = f"update_mask: {path!r} is not a field path of bookstore.v1.Book"
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, why)
            return book

        async def DeleteBook(self, request: Any, context: Any) -> Any:
            self.books.pop((await self._book(request.name, context)).name)
            return empty_pb2.Empty()

        async def CheckoutBook(self, request: Any, context: Any) -> Any:
            book = await self._book(request.name, context)
            which = request.WhichOneof("borrower")
            borrower = getattr(request, which) if which else ""
            if not borrower:
                why = "a borrower is required: member_id or library_card"
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, why)
            return r.Loan(name=f"{book.name}/loans/1", book=book.name, borrower=borrower)

        async def GetBookFile(self, request: Any, context: Any) -> Any:
            return r.BookFile(
                name=request.name, content_type="text/plain", content=b"chapter 1", size_bytes=9
            )

        async def GetChapter(self, request: Any, context: Any) -> Any:
            book = await self._book(request.book, context)
            if request.chapter_number not in book.chapter_titles:
                why = f"{book.name} has no chapter {request.chapter_number}"
                await context.abort(grpc.StatusCode.NOT_FOUND, why)
            return r.Chapter(
                book=book.name,
                number=request.chapter_number,
                title=book.chapter_titles[request.chapter_number],
            )

        async def GetAuthor(self, request: Any, context: Any) -> Any:
            if request.name != "authors/herbert":
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
            return m.GetAuthorResponse(
                author=r.Author(name=request.name, display_name="Frank Herbert")
            )

        async def ListGenres(self, request: Any, context: Any) -> Any:
            genres = sorted({g for b in self.books.values() for g in b.genres})
            return m.ListGenresResponse(genres=genres, total_books=len(self.books))

        async def ImportBooks(self, requests: AsyncIterator[Any], context: Any) -> Any:
            names = []
            async for book in requests:
                self.books[book.name] = book
                names.append(book.name)
            return m.ImportBooksResponse(imported_count=len(names), book_names=names)

        async def GetStoreStats(self, request: Any, context: Any) -> Any:
            return m.StoreStats(total_books=len(self.books))

        async def _shelf(self, name: str, context: Any) -> Any:
            if name not in self.shelves:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{name} not found")
            return self.shelves[name]

        async def _book(self, name: str, context: Any) -> Any:
            if name not in self.books:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"{name} not found")
            return self.books[name]

        def _books_of(self, shelf: str) -> list[Any]:
            return [b for n, b in sorted(self.books.items()) if n.startswith(shelf + "/books/")]

    return Bookstore()


def _copy_path(source: Message, target: Message, path: str) -> None:
    """Copy the field a FieldMask path names (`title`, `price.units`) from source to target.

    An unknown field is a KeyError, a path through a field that is not a message an
    AttributeError.
    """
    name, _, rest = path.partition(".")
    if rest:
        _copy_path(getattr(source, name), getattr(target, name), rest)
        return
    field = source.DESCRIPTOR.fields_by_name[name]
    target.ClearField(name)
    if field.is_repeated:
        getattr(target, name).MergeFrom(getattr(source, name))
    elif field.has_presence and not source.HasField(name):
        return  # unset in the source: unset in the target
    elif field.message_type is not None:
        getattr(target, name).CopyFrom(getattr(source, name))
    else:
        setattr(target, name, getattr(source, name))
