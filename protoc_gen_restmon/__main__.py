"""`python -m protoc_gen_restmon` acts as the protoc plugin."""

from protoc_gen_restmon.plugin.main import main

if __name__ == "__main__":
    main()
