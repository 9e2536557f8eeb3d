from xoromail_cli.cli import main

main()
