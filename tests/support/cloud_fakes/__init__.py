"""In-memory fakes of Google Cloud services, written against the betterproto packages our plugin
generates from the googleapis corpus (the generated package is passed in, as examples/bookstore.py
does): Cloud Tasks, Secret Manager and the Locations mixin, with pages, filters, update masks and
errors carrying google.rpc details, as the real services answer them."""
