"""One module per public routing data source; `trouter.data.loaders` gathers them by name."""
