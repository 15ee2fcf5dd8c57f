# Convenience aliases for ./run.sh (which sets up .venv on first use).
.PHONY: demo test setup clean
demo:
	./run.sh demo
test:
	./run.sh test
setup:
	./run.sh setup
clean:
	rm -rf .venv demo_out
