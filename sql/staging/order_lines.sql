-- One row per order line.
SELECT
    order_id,
    line_number,
    product_id,
    product_name,
    category,
    quantity,
    unit_price
FROM raw.order_lines
