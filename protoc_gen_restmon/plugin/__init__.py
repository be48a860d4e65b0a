"""The protoc plugin: a CodeGeneratorRequest in, generated files (or one clear error) out."""
