"""A quick in-process query check for A/B runs of two checkouts (what bench/ab_core.sh's fresh-process medians
could not settle under load): 10k x 384 file index, 300 top-10 queries plain and filtered, CPU ms per query.

    for r in 1 2 3; do for d in /tmp/base .; do (cd $d && PYTHONPATH=$PWD python /path/to/bench/query_ab.py $d); done; done
"""

import asyncio
import gc
import random
import sys
import tempfile
import time

from pyapp import LocalIndex


async def main():
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as d:
        idx = await LocalIndex.create(d + "/i", dims=384, indexed=["category"])
        await idx.insert_many([{"id": f"s{i}", "vector": [rng.gauss(0,1) for _ in range(384)], "metadata": {"category": f"c{i%10}"}} for i in range(10000)])
        await idx.close()
        idx = await LocalIndex.open(d + "/i")
        qs = [[rng.gauss(0,1) for _ in range(384)] for _ in range(300)]
        for q in qs[:20]: await idx.query(q, top_k=10)
        t = time.process_time()
        for q in qs: await idx.query(q, top_k=10)
        a = (time.process_time() - t) / len(qs) * 1000
        t = time.process_time()
        for q in qs: await idx.query(q, top_k=10, filter={"category": {"$eq": "c3"}})
        b = (time.process_time() - t) / len(qs) * 1000
        print(sys.argv[1], "query ms", round(a, 3), "filtered ms", round(b, 3), "gc counts", gc.get_count())
        await idx.close()
asyncio.run(main())
