# Run with: PYTHONPATH=<the kit's folder> python3 -m unittest (fn new prints the exact command).
import json
import unittest

from fn_contract import HttpError
from main import handler


class Log:
    def info(self, *args, **fields):
        pass


class Context:
    instance = "__NAME__-test"
    log = Log()


def post(body):
    return {"method": "POST", "path": "/", "query": {}, "headers": {}, "body": body}


class GreetingTest(unittest.TestCase):
    def test_greets_the_name_given(self):
        response = handler(post('{"name": "workshop"}'), Context())
        self.assertEqual(response["status"], 200)
        self.assertEqual(json.loads(response["body"])["greeting"], "Hello, workshop!")

    def test_refuses_a_body_without_a_name(self):
        with self.assertRaises(HttpError) as refused:
            handler(post("{}"), Context())
        self.assertEqual(refused.exception.status, 400)


if __name__ == "__main__":
    unittest.main()
