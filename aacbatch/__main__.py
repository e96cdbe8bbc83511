from aacbatch.cli import main

main()
