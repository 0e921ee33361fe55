from deploy.cli.main import main

main()
