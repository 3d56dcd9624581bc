"""Landing: from a source's own export files to rows in the bronze contract, each file once."""
