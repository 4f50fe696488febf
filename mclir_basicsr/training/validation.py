"""BasicSR's validation bookkeeping around a model's own scoring of each image: what the model classes whose metrics
differ from SRModel's (NAFNet's, DCPT's) share."""
import os.path as osp


def validate_each_image(model, dataloader, current_iter, tb_logger, score):
    """For every image: ``feed_data``, ``test``, then ``score(img_name, dataset_name) -> {metric name: value}`` (it
    also saves images if it wants). Then BasicSR's averages, best results and log lines (``val.metrics``)."""
    dataset_name = dataloader.dataset.opt['name']
    metrics = model.opt['val'].get('metrics')
    if metrics:
        model._initialize_best_metric_results(dataset_name)
        model.metric_results = {name: 0 for name in metrics}
    count = 0
    for count, data in enumerate(dataloader, 1):
        img_name = osp.splitext(osp.basename(data['lq_path'][0]))[0]
        model.feed_data(data)
        model.test()
        for name, value in score(img_name, dataset_name).items():
            model.metric_results[name] += value
        for key in ('gt', 'lq', 'output'):
            model.__dict__.pop(key, None)
    if metrics:
        for name in model.metric_results:
            model.metric_results[name] /= max(count, 1)
            model._update_best_metric_result(dataset_name, name, model.metric_results[name], current_iter)
        model._log_validation_metric_values(current_iter, dataset_name, tb_logger)
