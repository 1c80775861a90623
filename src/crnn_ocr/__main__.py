from crnn_ocr.cli.entry import main

raise SystemExit(main())
