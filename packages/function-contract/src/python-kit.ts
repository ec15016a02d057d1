import { fileURLToPath } from 'node:url';

/** The folder of the Python kit (`fn_contract.py`): on PYTHONPATH wherever a Python function runs. */
export const PYTHON_KIT_DIR = fileURLToPath(new URL('../python', import.meta.url));
