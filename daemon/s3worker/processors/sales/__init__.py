"""Daily sales reports: revenue, units and tickets by day, store and product; top products."""

from __future__ import annotations

from pathlib import Path

from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.sniffing import score, shape_of

ALIASES: dict[str, tuple[str, ...]] = {
    "date": (
        "date",
        "saledate",
        "salesdate",
        "day",
        "data",
        "datavenda",
        "orderdate",
        "transactiondate",
        "dt",
    ),
    "store": (
        "store",
        "storeid",
        "shop",
        "shopid",
        "loja",
        "lojaid",
        "branch",
        "filial",
        "location",
    ),
    "product": ("product", "productid", "sku", "item", "itemid", "produto", "produtoid", "ean"),
    "quantity": ("quantity", "qty", "units", "quantidade", "qtd", "qtde", "unidades"),
    "unit_price": ("unitprice", "price", "preco", "precounitario", "valorunitario"),
    "revenue": (
        "revenue",
        "amount",
        "total",
        "sales",
        "netsales",
        "valortotal",
        "receita",
        "totalamount",
        "linetotal",
    ),
    "ticket": (
        "ticket",
        "ticketid",
        "transactionid",
        "receipt",
        "receiptid",
        "orderid",
        "cupom",
        "pedido",
        "nota",
    ),
    "tickets": ("tickets", "transactions", "numtickets", "ntickets", "cupons"),
}


class SalesProcessor(Processor):
    """Sales by day x store x product (partitioned by dt=), daily totals and top products."""

    name = "sales"
    version = "1"

    def sniff(self, sample: Sample) -> float:
        a = ALIASES
        amounts = a["quantity"] + a["revenue"] + a["unit_price"]
        return score(
            shape_of(sample),
            [a["date"], a["product"], amounts],
            [a["store"], a["ticket"] + a["tickets"]],
        )

    def process(self, src: Path, out_dir: Path, ctx: JobContext) -> ProcessResult:
        # pandas loads here, in the worker process, never when routing.
        from s3worker.processors.sales.analysis import run

        return run(src, out_dir, ctx)
