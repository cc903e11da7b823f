from autoform.cli import main

main()
