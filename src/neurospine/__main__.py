from neurospine.cli.main import run

run()
