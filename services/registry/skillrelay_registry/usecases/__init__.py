"""The registry's use cases, one module per concern; ``RegistryService`` combines them."""
