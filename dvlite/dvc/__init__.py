"""Reading what DVC wrote (.dvc files, dvc.lock, .dvc/config, its caches) to migrate to dvlite."""
