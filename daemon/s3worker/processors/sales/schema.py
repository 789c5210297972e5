"""The sales roles: what each column is called in English, Portuguese, Spanish and German."""

from __future__ import annotations

from s3worker.processors.schema import Role, Schema

ROLES = (
    Role(
        "date",
        ("date", "saledate", "salesdate", "day", "data", "datavenda", "orderdate",
         "transactiondate", "invoicedate", "dt", "datum", "fecha", "fechaventa", "dia"),
        ("date", "data", "datum", "fecha", "day", "dia", "tag"),
        "date",
        "a date column",
    ),
    Role(
        "product",
        ("product", "productid", "sku", "item", "itemid", "produto", "produtoid", "ean",
         "stockcode", "productline", "producto", "articulo", "artigo", "artikel", "produkt",
         "warengruppe", "article", "category", "categoria", "description", "descricao",
         "descripcion"),
        ("product", "produto", "producto", "produkt", "item", "sku", "artikel", "articulo",
         "artigo", "article", "ware", "category", "categoria"),
        label="a product column",
    ),
    Role(
        "revenue",
        ("revenue", "amount", "total", "sales", "netsales", "valortotal", "receita",
         "totalamount", "linetotal", "umsatz", "ventas", "venta", "importe", "importetotal",
         "faturamento", "valor", "betrag", "gesamt", "sale", "turnover"),
        ("revenue", "amount", "total", "sales", "receita", "umsatz", "ventas", "importe",
         "faturamento", "betrag", "turnover"),
        "number",
        "a revenue/amount column",
    ),
    Role(
        "unit_price",
        ("unitprice", "price", "preco", "precounitario", "valorunitario", "precio",
         "preciounitario", "preis", "einzelpreis", "stueckpreis"),
        ("price", "preco", "precio", "preis"),
        "number",
        "a unit price column",
    ),
    Role(
        "quantity",
        ("quantity", "qty", "units", "quantidade", "qtd", "qtde", "unidades", "cantidad",
         "menge", "anzahl", "stueck"),
        ("quantity", "qty", "units", "quantidade", "cantidad", "menge", "anzahl"),
    ),
    Role(
        "store",
        ("store", "storeid", "shop", "shopid", "loja", "lojaid", "branch", "filial",
         "location", "tienda", "sucursal", "geschaeft", "filiale", "markt"),
        ("store", "shop", "loja", "branch", "filial", "tienda", "sucursal", "filiale"),
    ),
    Role(
        "ticket",
        ("ticket", "ticketid", "transactionid", "receipt", "receiptid", "orderid", "cupom",
         "pedido", "nota", "invoiceid", "invoiceno", "invoice", "invoicenumber", "factura",
         "rechnung", "bon", "beleg", "ticketnumber", "transaction"),
        ("ticket", "receipt", "invoice", "cupom", "pedido", "factura", "rechnung", "beleg",
         "transaction", "order"),
    ),
    Role("tickets", ("tickets", "transactions", "numtickets", "ntickets", "cupons")),
    # Read with the date when a file splits them ("Date", "Time"); sales need only the day.
    Role("time", ("time", "hora", "hour", "uhrzeit", "zeit", "horario"), ()),
)  # fmt: skip
SCHEMA = Schema("sales", ROLES, required=(("date",), ("revenue", "unit_price")))
