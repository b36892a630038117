"""Media: audio samples that users upload, converted to the bank's working form, and the
sound banks built from them."""
