"""A quick in-process query check for A/B runs of two checkouts (what bench/ab_core.sh's fresh-process medians
could not settle under load): 10k x 384 file index, 300 top-10 queries plain and filtered, CPU ms per query.

    for r in 1 2 3; do for d in /tmp/base .; do
      (cd $d && PYTHONPATH=$PWD python $OLDPWD/bench/query_ab.py $d); done; done
"""

import asyncio
import random
import sys
import tempfile
import time

from pyapp import LocalIndex


async def main(label: str) -> None:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as folder:
        index = await LocalIndex.create(folder + "/i", dims=384, indexed=["category"])
        await index.insert_many(
            [
                {"id": f"s{i}", "vector": [rng.gauss(0, 1) for _ in range(384)], "metadata": {"category": f"c{i % 10}"}}
                for i in range(10000)
            ]
        )
        await index.close()
        index = await LocalIndex.open(folder + "/i")
        queries = [[rng.gauss(0, 1) for _ in range(384)] for _ in range(300)]
        for q in queries[:20]:  # warm-up
            await index.query(q, top_k=10)
        started = time.process_time()
        for q in queries:
            await index.query(q, top_k=10)
        plain = (time.process_time() - started) / len(queries) * 1000
        started = time.process_time()
        for q in queries:
            await index.query(q, top_k=10, filter={"category": {"$eq": "c3"}})
        filtered = (time.process_time() - started) / len(queries) * 1000
        print(label, "query ms", round(plain, 3), "filtered ms", round(filtered, 3))
        await index.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "run"))
